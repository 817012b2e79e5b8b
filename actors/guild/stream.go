package guild

import "strconv"

// Stream is the event stream of guild id.
func Stream(id uint64) string { return "guild-" + strconv.FormatUint(id, 10) }

// StreamPrefix selects every guild stream in an events.Filter.
const StreamPrefix = "guild-"
