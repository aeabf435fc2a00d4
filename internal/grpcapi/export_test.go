package grpcapi

// SetQueuedHook makes s call f after each message of a transfer stream is queued for the
// batcher, so that a test can wait until the server has read what it sent.
func SetQueuedHook(s *Server, f func()) { s.queued.Store(&f) }
