package invariant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Client reads the platform through the gateway and the provider, as the
// contract publishes them.
type Client struct {
	Gateway    string // e.g. http://127.0.0.1:20080
	Provider   string // e.g. http://127.0.0.1:20090
	AdminToken string
	HTTP       *http.Client

	mu     sync.Mutex
	tokens map[string]string
}

// NewClient returns a client with a 10 s timeout per call.
func NewClient(gateway, provider, adminToken string) *Client {
	return &Client{Gateway: gateway, Provider: provider, AdminToken: adminToken,
		HTTP: &http.Client{Timeout: 10 * time.Second}, tokens: map[string]string{}}
}

// Do sends in (JSON, when not nil) to the full URL u with token and the
// extra headers, and decodes a 2xx answer into out (when not nil). Any
// other status is an error carrying the body; the status is returned too.
func (c *Client) Do(ctx context.Context, method, u, token string, in any, hdr map[string]string, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, u, err)
		}
	}
	return resp.StatusCode, nil
}

// Token logs user in once and returns the token.
func (c *Client) Token(ctx context.Context, user string) (string, error) {
	c.mu.Lock()
	t, ok := c.tokens[user]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	var out struct {
		Token string `json:"token"`
	}
	if _, err := c.Do(ctx, http.MethodPost, c.Gateway+"/api/login", "", map[string]string{"user_id": user}, nil, &out); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.tokens[user] = out.Token
	c.mu.Unlock()
	return out.Token, nil
}

// Get reads path on the gateway as user ("" for public endpoints) into out.
func (c *Client) Get(ctx context.Context, user, path string, out any) error {
	tok := ""
	if user != "" {
		var err error
		if tok, err = c.Token(ctx, user); err != nil {
			return err
		}
	}
	_, err := c.Do(ctx, http.MethodGet, c.Gateway+path, tok, nil, nil, out)
	return err
}

// Orders lists every order of user, following the cursor.
func (c *Client) Orders(ctx context.Context, user string) ([]Order, error) {
	var all []Order
	cursor := ""
	for {
		q := "/api/orders?limit=100"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Orders     []Order `json:"orders"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := c.Get(ctx, user, q, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Orders...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return all, nil
		}
		cursor = *page.NextCursor
	}
}

// Ledger reads the provider's ledger of one order.
func (c *Client) Ledger(ctx context.Context, orderID string) (Ledger, error) {
	var l Ledger
	_, err := c.Do(ctx, http.MethodGet, c.Provider+"/provider/ledger?order_id="+url.QueryEscape(orderID), "", nil, nil, &l)
	return l, err
}
