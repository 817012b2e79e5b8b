// Package permissions computes what a guild member may do, Discord-style.
//
// It is pure: no I/O, no clock, no logging. The guild and channel actors
// call it in decide to accept or refuse commands (send, edit, kick, ban,
// role edits), and the gateway fan-out and the history projections call it
// to filter what a session may see. Everyone computing with the same
// function is what keeps those decisions and those views consistent.
//
// The order follows Discord: the base set is @everyone's permissions united
// with the member's roles; ADMINISTRATOR (or being the owner) short-circuits
// to All; then channel overwrites apply in three layers: @everyone, the
// member's roles combined, and the member. A member left without
// VIEW_CHANNEL has no permission at all in that channel. Hierarchy checks
// (CanManageRole, CanActOn) compare role positions; the owner is above all.
package permissions
