package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ErrNotServed is returned (wrapped) when a substrate answers 404 for an
// endpoint: an emulator that serves writes but not /v1/keys or /v1/topology.
var ErrNotServed = errors.New("endpoint not served")

// Client speaks REPRAM's HTTP API (PUT and GET /v1/data/KEY, GET /v1/keys,
// /v1/topology and /v1/health) with a short bound on every request (the
// context's deadline, or Timeout when it has none), so a dead or stopped
// substrate costs at most that.
type Client struct {
	HTTP    *http.Client
	Timeout time.Duration // per request; default 1s
}

// NewClient returns a Client bounding every request by timeout (0: 1s).
func NewClient(timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{HTTP: &http.Client{Transport: tr}, Timeout: timeout}
}

// Peer is one entry of GET /v1/topology.
type Peer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	HTTPPort int    `json:"http_port"`
	Enclave  string `json:"enclave"`
}

// Topology is GET /v1/topology: the peers a substrate knows (its view of
// the mesh, partial with a low replication factor).
type Topology struct {
	NodeID  string `json:"node_id"`
	Enclave string `json:"enclave"`
	Peers   []Peer `json:"peers"`
}

// Health is GET /v1/health.
type Health struct {
	Status  string `json:"status"`
	NodeID  string `json:"node_id"`
	Enclave string `json:"enclave"`
}

func (c *Client) do(ctx context.Context, method, u string, body []byte, hdr http.Header) ([]byte, int, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, 0, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if resp.StatusCode == http.StatusNotFound && method != http.MethodGet {
		return b, resp.StatusCode, fmt.Errorf("%s %s: %w", method, u, ErrNotServed)
	}
	return b, resp.StatusCode, nil
}

// Put writes key on the substrate at addr (HOST:PORT of its HTTP API) with
// ttl seconds. REPRAM answers 201 after a quorum of acks, 202 when the
// quorum timed out (stored locally); both are success.
func (c *Client) Put(ctx context.Context, addr, key string, value []byte, ttl int) error {
	return c.put(ctx, addr, key, value, ttl)
}

func (c *Client) put(ctx context.Context, addr, key string, value []byte, ttl int) error {
	u := "http://" + addr + "/v1/data/" + url.PathEscape(key)
	_, code, err := c.do(ctx, http.MethodPut, u, value, http.Header{"X-Ttl": {strconv.Itoa(ttl)}})
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("PUT %s: status %d", u, code)
	}
	return nil
}

// Has reports whether the substrate at addr holds key (GET /v1/data/KEY).
func (c *Client) Has(ctx context.Context, addr, key string) (bool, error) {
	u := "http://" + addr + "/v1/data/" + url.PathEscape(key)
	_, code, err := c.do(ctx, http.MethodGet, u, nil, nil)
	switch {
	case err != nil:
		return false, err
	case code == http.StatusOK:
		return true, nil
	case code == http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("GET %s: status %d", u, code)
}

func (c *Client) getJSON(ctx context.Context, u string, v any) error {
	b, code, err := c.do(ctx, http.MethodGet, u, nil, nil)
	switch {
	case err != nil:
		return err
	case code == http.StatusNotFound:
		return fmt.Errorf("GET %s: %w", u, ErrNotServed)
	case code != http.StatusOK:
		return fmt.Errorf("GET %s: status %d", u, code)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// Keys lists the keys the substrate at addr holds under prefix
// (GET /v1/keys?prefix=P).
func (c *Client) Keys(ctx context.Context, addr, prefix string) ([]string, error) {
	var body struct {
		Keys []string `json:"keys"`
	}
	err := c.getJSON(ctx, "http://"+addr+"/v1/keys?prefix="+url.QueryEscape(prefix), &body)
	return body.Keys, err
}

// Topology returns GET /v1/topology of the substrate at addr.
func (c *Client) Topology(ctx context.Context, addr string) (Topology, error) {
	var t Topology
	err := c.getJSON(ctx, "http://"+addr+"/v1/topology", &t)
	return t, err
}

// Health returns GET /v1/health of the substrate at addr.
func (c *Client) Health(ctx context.Context, addr string) (Health, error) {
	var h Health
	err := c.getJSON(ctx, "http://"+addr+"/v1/health", &h)
	return h, err
}
