package marketing

import (
	"errors"
	"net/http"

	"qianlang.io/services/auth"
	"qianlang.io/services/httpapi"
)

// API is marketing's HTTP interface.
type API struct {
	store  *Store
	tokens *auth.Tokens
}

// NewAPI returns the HTTP handlers over store.
func NewAPI(store *Store, tokens *auth.Tokens) *API { return &API{store: store, tokens: tokens} }

// CouponView is a coupon as its owner sees it.
type CouponView struct {
	CouponID      string      `json:"coupon_id"`
	AmountCents   int64       `json:"amount_cents"`
	MinSpendCents int64       `json:"min_spend_cents"`
	State         CouponState `json:"state"`
}

// AdminCouponView is a coupon as the admin sees it: with its owner.
type AdminCouponView struct {
	CouponID      string      `json:"coupon_id"`
	UserID        string      `json:"user_id"`
	AmountCents   int64       `json:"amount_cents"`
	MinSpendCents int64       `json:"min_spend_cents"`
	State         CouponState `json:"state"`
}

// PutCoupon is PUT /api/admin/coupons/{coupon_id}: issue a coupon. Issuing
// the same coupon again is 200; the same id with other fields is 409
// CONFLICT.
func (a *API) PutCoupon(w http.ResponseWriter, r *http.Request) error {
	if err := a.tokens.RequireAdmin(r); err != nil {
		return err
	}
	id := r.PathValue("coupon_id")
	if !ValidCouponID(id) {
		return httpapi.BadRequest("coupon_id %q: want 1-160 of [A-Za-z0-9_-]", id)
	}
	var in CouponInput
	if err := httpapi.Decode(r, &in); err != nil {
		return err
	}
	spec, err := in.Validate()
	if err != nil {
		return httpapi.BadRequest("%v", err)
	}
	c, err := a.store.PutCoupon(r.Context(), id, spec)
	if errors.Is(err, ErrConflict) {
		return httpapi.Conflict("CONFLICT", "coupon %s was already issued with other fields", id)
	}
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, AdminCouponView{CouponID: c.CouponID, UserID: c.UserID,
		AmountCents: c.AmountCents, MinSpendCents: c.MinSpendCents, State: c.State})
	return nil
}

// ListCoupons is GET /api/coupons: the caller's coupons.
func (a *API) ListCoupons(w http.ResponseWriter, r *http.Request) error {
	user, err := a.tokens.RequireUser(r)
	if err != nil {
		return err
	}
	cs, err := a.store.Coupons(r.Context(), user)
	if err != nil {
		return err
	}
	out := make([]CouponView, len(cs))
	for i, c := range cs {
		out[i] = CouponView{CouponID: c.CouponID, AmountCents: c.AmountCents, MinSpendCents: c.MinSpendCents, State: c.State}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
