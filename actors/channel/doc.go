// Package channel is the actor of one guild text channel, the single writer of stream
// channel-<id>: it orders the channel's messages, gives them increasing ids, makes each one
// durable before anyone hears of it, and turns client retries into the message already stored.
//
// Flow of a message:
//
//  1. The gateway (REST or WebSocket) authenticates the session, verifies the message signature
//     against the author's ID-Cert (identity.MessageSig, identity.VerifyMessage) and asks the
//     guild actor for the sender's permissions in this channel (guild.Authorize), which it puts
//     in the command's By.Perms. For a command about an older message (edit, delete, pin,
//     reactions) it also looks the message up in the history read model, waiting for the read
//     model to reach the channel's last event first, and passes what it found as Target.
//  2. This actor decides: permissions, limits, validation, retry dedupe. The journal appends
//     the events to channel-<id>, and only then is the command answered, so a reply always means
//     "stored".
//  3. Everything downstream follows the log: the history projection (projections/history)
//     builds the messages clients read, and the gateway fans each event out to the members who
//     may see the channel.
//
// The state stays small (a count, the last id, the pins, the recent nonces), so an activation
// loads in one snapshot plus a short tail however long the channel's history. The cost is that
// facts about old messages (whether one exists, who wrote it, its reactions) are the read
// model's, brought in by the gateway and checked here only against what the actor knows (ids
// above the last one do not exist). Time comes in the commands (By.At), so decide stays pure.
package channel
