// Package guild is the actor of one guild, over stream guild-<id>: the guild itself, its
// channels and categories, roles, channel permission overwrites, members, bans and invites.
// Messages are not here; each channel has its own actor and stream (actors/channel).
//
// Flow: the REST edge (gateway) turns a request into a command naming the sender (By) and the
// time, and picks the snowflakes of anything new. The guild actor decides it against the
// guild's state: membership, the role hierarchy and the permissions package say who may do
// what, and anything the sender may not see answers ErrNotFound, like what does not exist.
// The journal appends the events to guild-<id> and answers once they are durable. The
// gateway's fan-out keeps its own copy of every guild, folded from the log with the same
// Apply, to know who may see each guild and channel event. Channel actors do not read guild
// state: before a message command the gateway asks this actor to Authorize the sender in that
// channel and passes the permissions along.
//
// Decide is pure (time comes in By.At), never changes its input, and replies with copies, so
// nothing that leaves the actor aliases the state it keeps mutating.
package guild
