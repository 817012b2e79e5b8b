package group

import (
	"fmt"
	"strconv"
)

// StreamPrefix starts the name of every group stream.
const StreamPrefix = "group-"

// Stream is the event stream of group id.
func Stream(id uint64) string { return StreamPrefix + strconv.FormatUint(id, 10) }

func parseID(kindID string) (uint64, error) {
	id, err := strconv.ParseUint(kindID, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("group id %q: not a positive decimal", kindID)
	}
	return id, nil
}
