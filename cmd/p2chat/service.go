package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
)

// serviceCommands register and discover service providers (PROTOCOL.md section 3, services).
func serviceCommands() []command {
	return []command{
		{name: "service add", synopsis: "NAME URL [--primary]", min: 2, max: 2, setup: (*Main).serviceAdd,
			summary: "register URL as a provider of service NAME for the stored session's actor"},
		{name: "service discover", synopsis: "FID [NAME]", min: 1, max: 2, setup: (*Main).serviceDiscover,
			summary: "list the providers FID registered (of service NAME): name, URL, primary or -"},
	}
}

func (m *Main) serviceAdd(fs *flag.FlagSet) runFunc {
	primary := fs.Bool("primary", false, "make it the primary provider (the first one of a service is primary anyway)")
	return func(ctx context.Context, args []string) error {
		c, err := m.client()
		if err != nil {
			return err
		}
		s, err := m.session(c)
		if err != nil {
			return err
		}
		svc, err := c.AddService(ctx, s, args[0], args[1], *primary)
		if err != nil {
			return err
		}
		m.printService(svc)
		return nil
	}
}

func (m *Main) serviceDiscover(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		fid, err := identity.ParseFID(args[0])
		if err != nil {
			return usageError{err}
		}
		name := ""
		if len(args) > 1 {
			name = args[1]
		}
		c, err := m.client()
		if err != nil {
			return err
		}
		list, err := c.Discover(ctx, fid, name)
		if err != nil {
			return err
		}
		for _, svc := range list {
			m.printService(svc)
		}
		return nil
	}
}

func (m *Main) printService(svc client.Service) {
	primary := "-"
	if svc.Primary {
		primary = "primary"
	}
	fmt.Fprintln(m.Stdout, svc.Service, svc.URL, primary)
}
