// Package keypackages is the MLS KeyPackage directory of one local actor: an event-sourced actor
// per FID over stream keypackages-<fid>. The edge (gateway/mls.go) validates each upload with
// mls.ParseKeyPackage and binds it to the uploading session's ID-Cert key before Upload reaches
// this actor; here the stock is kept per session, each one-time KeyPackage is handed out once,
// the last-resort one when none is left, and the KeyPackageClaimed event carries what remains so
// that the gateway can send the session its low-stock notice.
package keypackages
