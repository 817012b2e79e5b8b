// Command p2chat is the command-line client of polyproto-chat: what a newcomer uses to create an
// account on a home server, log in, see and end sessions, log in at other servers with the home
// server's ID-Cert, register or discover services, and use guild chat: create and join guilds,
// make channels, roles and invites, send signed messages, read history and tail a channel live;
// and end-to-end encrypted DMs and groups (MLS): upload KeyPackages, send, read, add and remove.
//
// It is a thin shell around the Go SDK (package client), which does every request and keeps each
// session's key, ID-Cert and token in a directory (--dir), so that later invocations go on with
// the same session instead of logging in again.
//
// Files: main.go holds the Main type (global flags, the dispatcher, exit codes, error lines),
// session.go how a command picks the stored session it acts as, password.go where passwords come
// from, and one file per command group (identity.go, service.go, chat.go, mls.go); a new group adds its
// file and one entry to the command table in main.go. mlsstate.go is what the CLI keeps beside the
// SDK's MLS state (the names of a session's groups and DMs, learnt from the server's list).
//
// Output is for scripts as much as for people: one item per line, single records as "key value"
// lines, lists as one line per item with space-separated fields that never contain spaces. Errors
// are one line "p2chat: <message>" on stderr with exit code 1; usage errors exit with 2.
package main
