package channel

import "strconv"

// Stream is the event stream of channel id (its messages; the channel itself is in its
// guild's stream).
func Stream(id uint64) string { return "channel-" + strconv.FormatUint(id, 10) }

// StreamPrefix selects every channel stream in an events.Filter.
const StreamPrefix = "channel-"
