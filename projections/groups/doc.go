// Package groups is the read model of which messaging groups each actor is in, built from the
// group streams (actors/group) by the projection runner: what GET /.p2/chat/v1/groups lists, so
// that a client that was offline, or a new device, finds its DMs, groups and encrypted channels.
package groups
