package federation

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/polyproto-chat/server/identity"
)

// Peers maps a domain to the base URL of its server, for tests and private deployments whose
// servers are not reachable at https://<domain>. Base URLs have no trailing slash.
type Peers map[string]string

// ParsePeers reads the --peers flag: comma-separated domain=url pairs, for example
// "a.test=http://127.0.0.1:1,b.test=https://b.example". The empty string is no peers. Domains are
// lower-cased and must be valid; URLs must be absolute http(s) URLs with a host and may carry a
// path prefix, but no user info, query or fragment, since routes are appended to them.
func ParsePeers(s string) (Peers, error) {
	peers := Peers{}
	if strings.TrimSpace(s) == "" {
		return peers, nil
	}
	for pair := range strings.SplitSeq(s, ",") {
		domain, rawURL, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return nil, fmt.Errorf("peers: %q: want domain=url", pair)
		}
		domain = strings.ToLower(strings.TrimSpace(domain))
		if err := identity.ValidateDomain(domain); err != nil {
			return nil, fmt.Errorf("peers: domain %q: %w", domain, err)
		}
		if _, dup := peers[domain]; dup {
			return nil, fmt.Errorf("peers: domain %q given twice", domain)
		}
		base, err := parseBaseURL(strings.TrimSpace(rawURL))
		if err != nil {
			return nil, fmt.Errorf("peers: %s: %w", domain, err)
		}
		peers[domain] = base
	}
	return peers, nil
}

func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("url %q: scheme must be http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("url %q: no host", raw)
	case u.User != nil:
		return "", fmt.Errorf("url %q: user info is not allowed", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("url %q: query and fragment are not allowed", raw)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// BaseURL is where domain's server answers: the configured URL, else https://<domain>.
func (p Peers) BaseURL(domain string) string {
	domain = strings.ToLower(domain)
	if base, ok := p[domain]; ok {
		return base
	}
	return "https://" + domain
}
