package gateway

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// corkConn is the TCP connection under a gorilla connection. While corked, writes collect in
// buf and leave in one write(2) at uncork: a connection with several frames queued sends them
// together instead of one system call each (one write per frame was a fifth of the server's CPU
// under chat load). gorilla serializes its frame writes, so buf only ever holds whole frames;
// a control frame gorilla writes from another goroutine meanwhile (a pong) joins the batch.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.corked {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what collected since cork, in one write (net.Conn writes never interleave).
func (c *corkConn) uncork() error {
	c.mu.Lock()
	c.corked = false
	b := c.buf
	c.buf = nil
	c.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	_, err := c.Conn.Write(b)
	return err
}

// corkingWriter hands gorilla's Upgrade a corkConn when it hijacks the connection.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	nc, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc}
	return w.conn, brw, nil
}
