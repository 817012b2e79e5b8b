// Package group is the messaging-group actor (polyproto-chat 2.1, 3.2-3.5): one event-sourced
// actor per group over stream group-<id>. It is the MLS delivery service's memory: it orders
// handshakes (the first valid commit for an epoch wins, later ones get ErrEpoch with the current
// epoch), keeps which session holds which leaf so that it can apply the group's rules (DMs never
// grow beyond their two actors, only owners add actors or remove others, a member may add a new
// device of any member), and stores application messages it cannot read. The edge
// (gateway/groups.go) parses every MLS message with package mls before a command reaches Decide,
// which stays pure; the chat fan-out turns the events into MLS_COMMIT, MLS_WELCOME, MLS_MESSAGE and
// NEW_DEVICE dispatches.
package group
