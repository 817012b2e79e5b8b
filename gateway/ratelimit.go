package gateway

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// maxLimitedAddrs bounds the addresses an addrLimiter remembers; past it, the idle ones are
// forgotten (and if none is idle, all are: a flood of addresses then meets fresh buckets, which
// is no worse than no limit, while memory stays bounded).
const maxLimitedAddrs = 100_000

// addrLimiter is a token bucket per client address: perWindow requests per window, in bursts
// of as many. A negative perWindow disables it.
type addrLimiter struct {
	perWindow int
	window    time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

func newAddrLimiter(perWindow int, window time.Duration) *addrLimiter {
	return &addrLimiter{perWindow: perWindow, window: window, buckets: map[string]*bucket{}}
}

func (l *addrLimiter) allow(addr string, now time.Time) bool {
	if l.perWindow < 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[addr]
	if b == nil {
		if len(l.buckets) >= maxLimitedAddrs {
			for a, old := range l.buckets {
				if now.Sub(old.last) > l.window {
					delete(l.buckets, a)
				}
			}
			if len(l.buckets) >= maxLimitedAddrs {
				clear(l.buckets)
			}
		}
		// Bursts of perWindow, refilled at perWindow per window (see bucket).
		b = newBucket(2*l.perWindow, l.perWindow, l.window, now)
		l.buckets[addr] = b
	}
	return b.allow(now)
}

// clientAddr is the client's IP without the port. Behind a reverse proxy every request has the
// proxy's address; such deployments should limit at the proxy.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
