package keypackages

import (
	"errors"
	"time"
)

// Package is one validated KeyPackage.
type Package struct {
	Ref      []byte
	Raw      []byte // the MLSMessage as uploaded
	InitKey  []byte
	NotAfter time.Time
}

// Upload adds a session's one-time KeyPackages and, if LastResort is set, replaces its
// last-resort one. Reply: Stock.
type Upload struct {
	Session    string
	OneTime    []Package
	LastResort *Package
	At         time.Time
}

// Claim hands out one KeyPackage per live session of the actor (Sessions: the account's live
// sessions; packages of any other session are dropped). By is the claiming actor, for the
// envelope. Reply: []Claimed, in session order, empty if no session has a usable KeyPackage.
type Claim struct {
	Sessions []string
	By       string
	At       time.Time
}

// Claimed is one KeyPackage handed out.
type Claimed struct {
	Session    string
	KeyPackage []byte
	LastResort bool
}

// GetStock asks for a session's stock. Reply: Stock.
type GetStock struct {
	Session string
	At      time.Time
}

// Stock is what a session has left.
type Stock struct {
	OneTime    int  // usable one-time KeyPackages
	LastResort bool // a usable last-resort KeyPackage
	// LastResortUsed: the last-resort KeyPackage was handed out since it was uploaded; the
	// client should replace it (polyproto-mls 1.1.1).
	LastResortUsed bool
}

// Limits.
const (
	// MaxStock is the most one-time KeyPackages a session may hold: enough for weeks of new
	// conversations, small enough that one actor cannot fill the disk.
	MaxStock = 100
	// LowStock: below this many one-time KeyPackages after a claim, the session is told to upload
	// more (LOW_KEY_PACKAGES).
	LowStock = 10
)

// Errors a caller branches on.
var (
	// ErrInvalid: a malformed command (empty upload, a package without ref).
	ErrInvalid = errors.New("invalid key package upload")
	// ErrDuplicate: a KeyPackage, or its init_key, is already in the stock.
	ErrDuplicate = errors.New("key package already uploaded")
	// ErrStockFull: the upload would take the session past MaxStock.
	ErrStockFull = errors.New("key package stock full")
)
