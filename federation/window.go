package federation

import "time"

// clockSkew is how far ahead of ours a home server's clock may run. It issues certs and signs cache
// windows starting at its own "now", which can be in our future: without this, a login right
// after the cert was issued would fail whenever the home server's clock is a second ahead. Only
// beginnings are eased; ends (expiry, end of a cache window) are held strictly.
const clockSkew = time.Minute

// easeStart is the time to check a window beginning at start against: now, or start itself when
// start is at most clockSkew ahead of now.
func easeStart(now, start time.Time) time.Time {
	if now.Before(start) && start.Sub(now) <= clockSkew {
		return start
	}
	return now
}

func earliest(t time.Time, more ...time.Time) time.Time {
	for _, m := range more {
		if m.Before(t) {
			t = m
		}
	}
	return t
}
