package inventory

import (
	"errors"
	"fmt"
	"net/http"

	"qianlang.io/services/auth"
	"qianlang.io/services/httpapi"
)

// API is inventory's HTTP interface.
type API struct {
	store  *Store
	tokens *auth.Tokens
}

// NewAPI returns the HTTP handlers over store.
func NewAPI(store *Store, tokens *auth.Tokens) *API { return &API{store: store, tokens: tokens} }

// SKUView is the public view of a SKU.
type SKUView struct {
	SKUID      string `json:"sku_id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Available  int64  `json:"available"`
	Locked     int64  `json:"locked"`
	Sold       int64  `json:"sold"`
}

// AdminSKUView is what the admin sees: the public view, the cost and the
// units ever stocked.
type AdminSKUView struct {
	SKUView
	CostCents int64 `json:"cost_cents"`
	Stocked   int64 `json:"stocked"`
}

func viewOf(s SKU) SKUView {
	return SKUView{SKUID: s.SKUID, Name: s.Name, PriceCents: s.PriceCents, Available: s.Available, Locked: s.Locked, Sold: s.Sold}
}

// PutSKU is PUT /api/admin/skus/{sku_id}: create the SKU or set its name,
// price and cost, and add stock units.
func (a *API) PutSKU(w http.ResponseWriter, r *http.Request) error {
	if err := a.tokens.RequireAdmin(r); err != nil {
		return err
	}
	id := r.PathValue("sku_id")
	if !ValidSKUID(id) {
		return httpapi.BadRequest("sku_id %q: want 1-64 of [A-Za-z0-9_-]", id)
	}
	var in SKUInput
	if err := httpapi.Decode(r, &in); err != nil {
		return err
	}
	change, err := in.Validate()
	if err != nil {
		return httpapi.BadRequest("%v", err)
	}
	sku, err := a.store.PutSKU(r.Context(), id, change)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, AdminSKUView{SKUView: viewOf(sku), CostCents: sku.CostCents, Stocked: sku.Stocked})
	return nil
}

// GetSKU is GET /api/skus/{sku_id}, public.
func (a *API) GetSKU(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("sku_id")
	if !ValidSKUID(id) {
		return httpapi.NotFound("no SKU %q", id)
	}
	sku, err := a.store.SKU(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		return httpapi.NotFound("no SKU %q", id)
	}
	if err != nil {
		return fmt.Errorf("get sku: %w", err)
	}
	httpapi.WriteJSON(w, http.StatusOK, viewOf(sku))
	return nil
}
