package auth

import (
	"context"
)

// IsAdmin reports whether id may do everything.
func (id *Identity) IsAdmin() bool { return id.Role == RoleAdmin }

// CanWrite reports whether id may write anything over REST at all (readers
// and agents may not).
func (id *Identity) CanWrite() bool { return id.Role == RoleAdmin || id.Role == RoleSource }

// FixedSource returns the one source a source identity may act as, and
// whether it has one. An admin, a reader or a reviewed identity has none.
func (id *Identity) FixedSource() (string, bool) {
	if id.Role == RoleSource && id.Source != "" {
		return id.Source, true
	}
	return "", false
}

// AuthorizeSource checks that id may use verb (VerbPub or VerbSub) on the
// bundles of source. Readers may sub on every source; agents on none.
func (id *Identity) AuthorizeSource(ctx context.Context, source, verb string) error {
	switch id.Role {
	case RoleAdmin:
		return nil
	case RoleReader:
		if verb == VerbSub {
			return nil
		}
		return Forbidden(id, "is read-only")
	case RoleSource:
		if id.Source != "" {
			if id.Source == source {
				return nil
			}
			return Forbidden(id, "may not act as source %q", source)
		}
		if id.Reviewer != nil {
			return id.Reviewer.Review(ctx, id, source, verb)
		}
	}
	return Forbidden(id, "may not %s source %q", VerbText(verb), source)
}

// AuthorizeConsumer checks that id may act as the agent of consumer.
func (id *Identity) AuthorizeConsumer(consumer string) error {
	switch {
	case id.Role == RoleAdmin:
		return nil
	case id.Role == RoleAgent && id.Consumer == consumer:
		return nil
	case id.Role == RoleAgent:
		return Forbidden(id, "may not act for consumer %q", consumer)
	}
	return Forbidden(id, "is not an agent identity")
}

// AuthorizePort checks that id may use a listener: agents only the agent
// port, everyone else anything but the agent port (admins everything).
func (id *Identity) AuthorizePort(p Port) error {
	switch {
	case id.Role == RoleAdmin:
		return nil
	case id.Role == RoleAgent && p != PortAgent:
		return Forbidden(id, "may only use the agent port")
	case id.Role != RoleAgent && p == PortAgent:
		return Forbidden(id, "may not use the agent port")
	case id.Role == RoleReader && p == PortSource:
		return Forbidden(id, "may not use the source port")
	}
	return nil
}

// SeesSecrets reports whether bundles are shown to id with Secret data.
func (id *Identity) SeesSecrets() bool { return id.Role != RoleReader }

func VerbText(verb string) string {
	if verb == VerbPub {
		return "write to"
	}
	return "read"
}
