// Package federation is the server-to-server edge: one forwarder per peer server follows the
// event log (checkpointed) and delivers group events its actors appended to the participants'
// servers, and the handlers that accept and deduplicate what peers deliver. Nothing is here yet:
// it arrives with the federation issue; see ../shared/DESIGN.md section 8 for the design.
package federation
