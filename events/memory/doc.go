// Package memory is an events.Store that keeps everything in process memory: for tests, demos
// (--store memory) and as the reference the other stores are compared with. It is not durable:
// "durable" here means "appended to a slice", and everything is gone after Close.
package memory
