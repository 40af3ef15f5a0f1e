package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// sender is one client's keep-alive connection for the ingest benchmarks, speaking HTTP/1.1
// itself: each post is the client's request (method, path, headers, body), written in one
// call and read back with http.ReadResponse, without net/http's client machinery (a reader
// and a writer goroutine per connection, a request object, a copy buffer for each body).
// That machinery is the load generator's cost, not the server's, on the two cores they
// share.
type sender struct {
	conn net.Conn
	r    *bufio.Reader
	// head is the request up to its Content-Length value; req is reused for each post.
	head, req []byte
	url       string
}

// dialSender connects to rawURL's host. Each post is a POST to rawURL's path with headers,
// each "Name: value", and the body's Content-Length.
func dialSender(rawURL string, headers ...string) (*sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	var head strings.Builder
	head.WriteString("POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	for _, h := range headers {
		head.WriteString(h + "\r\n")
	}
	head.WriteString("Content-Length: ")
	return &sender{conn: conn, r: bufio.NewReader(conn), head: []byte(head.String()), url: rawURL}, nil
}

// post sends body and returns the answer's status and body, and the time between sending
// and the end of the answer.
func (s *sender) post(body []byte) (status int, reply []byte, latency time.Duration, err error) {
	s.req = append(s.req[:0], s.head...)
	s.req = strconv.AppendInt(s.req, int64(len(body)), 10)
	s.req = append(s.req, "\r\n\r\n"...)
	s.req = append(s.req, body...)
	start := time.Now()
	if err := s.conn.SetDeadline(start.Add(time.Minute)); err != nil {
		return 0, nil, 0, err
	}
	if _, err := s.conn.Write(s.req); err != nil {
		return 0, nil, 0, err
	}
	resp, err := http.ReadResponse(s.r, nil)
	if err != nil {
		return 0, nil, 0, err
	}
	reply, err = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	latency = time.Since(start)
	if err == nil && resp.Close {
		err = fmt.Errorf("POST %s: the server closed the connection", s.url)
	}
	return resp.StatusCode, reply, latency, err
}

func (s *sender) close() { _ = s.conn.Close() }
