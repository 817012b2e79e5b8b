package gateway

import "time"

// bucket is a connection's inbound rate limit: a token bucket holding up to burst frames,
// refilled at (frames-burst) per window. Any window then admits at most burst + (frames-burst)
// = frames frames, which is the contract's "no more than 60 in any 30 s, bursts of 20".
type bucket struct {
	tokens, burst float64
	perSecond     float64
	last          time.Time
}

func newBucket(frames, burst int, window time.Duration, now time.Time) *bucket {
	rate := float64(frames-burst) / window.Seconds()
	if rate <= 0 { // burst >= frames: refill the whole allowance per window
		rate = float64(frames) / window.Seconds()
	}
	return &bucket{tokens: float64(burst), burst: float64(burst), perSecond: rate, last: now}
}

// allow takes one token if there is one.
func (b *bucket) allow(now time.Time) bool {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt.Seconds()*b.perSecond)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
