package account

// Stream is the event stream of the account of fid (lower-case, as identity.ParseFID returns it).
func Stream(fid string) string { return "actor-" + fid }
