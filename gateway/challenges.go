package gateway

import (
	"errors"
	"sync"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// errTooManyChallenges: more challenges are pending than the server keeps.
var errTooManyChallenges = errors.New("too many pending challenges, try again shortly")

// challenges are the pending challenge strings of foreign-actor login. They live in memory:
// a challenge is good for minutes, a restart only makes clients ask again, and each completed
// one is recorded in the actor's stream (the public key-trial log).
type challenges struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	pending map[string]time.Time // challenge -> expiry
}

func newChallenges(ttl time.Duration, max int) *challenges {
	return &challenges{ttl: ttl, max: max, pending: map[string]time.Time{}}
}

// issue makes a new challenge valid until the returned time.
func (c *challenges) issue(now time.Time) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) >= c.max {
		for ch, exp := range c.pending {
			if !now.Before(exp) {
				delete(c.pending, ch)
			}
		}
		if len(c.pending) >= c.max {
			return "", time.Time{}, errTooManyChallenges
		}
	}
	ch, exp := identity.NewChallenge(), now.Add(c.ttl)
	c.pending[ch] = exp
	return ch, exp, nil
}

// consume takes ch out of the pending set: true if it was pending and not expired. A challenge
// is single use whatever the outcome, so a failed answer cannot be retried against it.
func (c *challenges) consume(ch string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.pending[ch]
	delete(c.pending, ch)
	return ok && now.Before(exp)
}
