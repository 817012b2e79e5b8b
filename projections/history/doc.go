// Package history is the message-history read model of guild text channels.
//
// Where it sits: the channel actor (actors/channel) decides on a message command and appends
// the resulting event (MessageCreated, MessageEdited, MessageDeleted, MessagesBulkDeleted,
// MessagePinned/Unpinned, ReactionAdded/Removed) to the stream channel-<id>. The projections
// Runner follows the event store and hands those events, in global order, to Projection.Apply,
// which keeps one row per live message in the read-model database (projections.DB). The gateway
// then serves from it through Reader: pages of GET /channels/{id}/messages, single messages,
// the pins, and the Facts about a message that the channel actor's edit, delete, pin and
// reaction commands are checked against (after waiting for the runner to catch up with the
// channel, so that the facts are not older than the client's own writes).
//
// Each message is stored as the JSON the API serves (Message), so a page is a short reverse
// scan whose values are concatenated into the response, with no decoding or encoding on the
// read path. Writes pay instead: an edit, pin or reaction decodes and re-encodes its message.
//
// Pages are always newest first, whatever the mode (docs/PROTOCOL.md); see Query.
package history
