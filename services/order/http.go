package order

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"qianlang.io/services/auth"
	"qianlang.io/services/httpapi"
	"qianlang.io/services/providerclient"
)

// TokenTTL is how long a login token is valid.
const TokenTTL = 24 * time.Hour

// API is the order service's HTTP interface.
type API struct {
	app            *App
	tokens         *auth.Tokens
	providerSecret string
}

// NewAPI returns the HTTP interface over app.
func NewAPI(app *App, tokens *auth.Tokens, providerSecret string) *API {
	return &API{app: app, tokens: tokens, providerSecret: providerSecret}
}

// Routes registers the API's routes with handle (daemon.Service.Handle).
func (h *API) Routes(handle func(pattern string, fn httpapi.HandlerFunc)) {
	handle("POST /api/login", h.login)
	handle("POST /api/orders", h.place)
	handle("GET /api/orders", h.list)
	handle("GET /api/orders/{order_id}", h.get)
	handle("POST /api/orders/{order_id}/pay", h.pay)
	handle("POST /api/orders/{order_id}/cancel", h.cancel)
	handle("POST "+CallbackPath, h.paymentCallback)
}

func (h *API) login(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		UserID string `json:"user_id"`
	}
	if err := httpapi.Decode(r, &in); err != nil {
		return err
	}
	if !auth.ValidUserID(in.UserID) {
		return httpapi.BadRequest("user_id must be 1 to 64 letters, digits, '-' or '_'")
	}
	tok, err := h.tokens.Sign(in.UserID, time.Now().Add(TokenTTL))
	if err != nil {
		return httpapi.BadRequest("%v", err)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
	return nil
}

type placeBody struct {
	Items    []ItemInput `json:"items"`
	CouponID string      `json:"coupon_id"`
	Address  *Address    `json:"address"`
}

func (h *API) place(w http.ResponseWriter, r *http.Request) error {
	user, err := h.tokens.RequireUser(r)
	if err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if err := ValidIdemKey(key); err != nil {
		return apiError(err)
	}
	var body placeBody
	if err := httpapi.Decode(r, &body); err != nil {
		return err
	}
	o, created, err := h.app.Place(r.Context(), PlaceInput{UserID: user, IdemKey: key, Items: body.Items,
		CouponID: body.CouponID, Address: body.Address})
	if err != nil {
		return apiError(err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpapi.WriteJSON(w, status, Placed(o))
	return nil
}

func (h *API) get(w http.ResponseWriter, r *http.Request) error {
	user, err := h.tokens.RequireUser(r)
	if err != nil {
		return err
	}
	o, err := h.app.store.GetForUser(r.Context(), user, r.PathValue("order_id"))
	if err != nil {
		return apiError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, View(o))
	return nil
}

func (h *API) list(w http.ResponseWriter, r *http.Request) error {
	user, err := h.tokens.RequireUser(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return apiError(err)
	}
	var after *Cursor
	if c := q.Get("cursor"); c != "" {
		if after, err = DecodeCursor(c); err != nil {
			return apiError(err)
		}
	}
	orders, err := h.app.store.List(r.Context(), user, after, limit+1)
	if err != nil {
		return err
	}
	out := ListView{Orders: []OrderView{}}
	if len(orders) > limit {
		orders = orders[:limit]
		last := orders[limit-1]
		next := EncodeCursor(Cursor{CreatedAt: last.CreatedAt, OrderID: last.ID})
		out.NextCursor = &next
	}
	for _, o := range orders {
		out.Orders = append(out.Orders, View(o))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *API) pay(w http.ResponseWriter, r *http.Request) error {
	user, err := h.tokens.RequireUser(r)
	if err != nil {
		return err
	}
	id, cents, err := h.app.Pay(r.Context(), user, r.PathValue("order_id"))
	if err != nil {
		return apiError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"payment_id": id, "pay_cents": cents})
	return nil
}

func (h *API) cancel(w http.ResponseWriter, r *http.Request) error {
	user, err := h.tokens.RequireUser(r)
	if err != nil {
		return err
	}
	o, err := h.app.Cancel(r.Context(), user, r.PathValue("order_id"))
	if err != nil {
		return apiError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, View(o))
	return nil
}

// paymentCallback takes the provider's signed payment notification and
// answers 200 once its effect is committed (duplicates included).
func (h *API) paymentCallback(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, httpapi.MaxBody+1))
	if err != nil {
		return httpapi.BadRequest("read body: %v", err)
	}
	if len(body) > httpapi.MaxBody {
		return httpapi.BadRequest("body too large")
	}
	if !auth.VerifyBody(h.providerSecret, body, r.Header.Get(auth.SignatureHeader)) {
		return httpapi.Unauthorized("bad signature")
	}
	// paid_at is not read: the order is paid when this service records it.
	var n struct {
		PaymentID string `json:"payment_id"`
		OrderID   string `json:"order_id"`
		Cents     int64  `json:"cents"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return httpapi.BadRequest("malformed JSON: %v", err)
	}
	if n.PaymentID == "" || len(n.PaymentID) > 128 || n.OrderID == "" || n.Cents < 0 {
		return httpapi.BadRequest("payment_id, order_id and cents ≥ 0 are required")
	}
	notice := providerclient.PaymentNotification{PaymentID: n.PaymentID, OrderID: n.OrderID, Cents: n.Cents}
	if err := h.app.SettlePayment(r.Context(), notice); err != nil {
		return apiError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// apiError maps the service's errors to the contract's answers.
func apiError(err error) error {
	var inv *InvalidError
	switch {
	case errors.As(err, &inv):
		return httpapi.BadRequest("%s", inv.Msg)
	case errors.Is(err, ErrNotFound):
		return httpapi.NotFound("no such order")
	case errors.Is(err, ErrUnknownSKU):
		return httpapi.BadRequest("%v", err)
	case errors.Is(err, ErrOutOfStock):
		return httpapi.Conflict("OUT_OF_STOCK", "%v", err)
	case errors.Is(err, ErrCouponUnavailable):
		return httpapi.Conflict("COUPON_UNAVAILABLE", "%v", err)
	case errors.Is(err, ErrNotPayable):
		return httpapi.Conflict("ORDER_NOT_PAYABLE", "%v", err)
	case errors.Is(err, ErrAlreadyShipped):
		return httpapi.Conflict("ALREADY_SHIPPED", "%v", err)
	case errors.Is(err, ErrUnavailable):
		return httpapi.Unavailable("%v", err)
	}
	return err
}
