package keypackages

// StreamPrefix starts the name of every KeyPackage stream.
const StreamPrefix = "keypackages-"

// Stream is the event stream of fid's KeyPackages (fid lower-case, as identity.ParseFID returns it).
func Stream(fid string) string { return StreamPrefix + fid }
