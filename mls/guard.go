package mls

import "fmt"

// recovered turns a panic inside the library into an error wrapping ErrMalformed. Every entry
// point that hands network bytes to the library defers it: the library is young (a fuzzer found
// a nil dereference in its KeyPackage encoder), and an input that crashes it must cost the
// request an error, not the server or the client a goroutine.
func recovered(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: the MLS library failed on this input: %v", ErrMalformed, r)
	}
}
