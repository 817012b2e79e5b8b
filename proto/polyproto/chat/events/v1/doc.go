// Package eventsv1 is generated from the stored-event schemas next to it (`make proto`): the
// envelope every event carries (Metadata) and the events actors append. Event type names in the
// log are these messages' full protobuf names. Only this file is hand-written.
package eventsv1
