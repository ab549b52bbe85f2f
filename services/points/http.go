package points

import (
	"net/http"

	"qianlang.io/services/auth"
	"qianlang.io/services/httpapi"
)

// API is points' HTTP interface.
type API struct {
	store  *Store
	tokens *auth.Tokens
}

// NewAPI returns the HTTP handlers over store.
func NewAPI(store *Store, tokens *auth.Tokens) *API { return &API{store: store, tokens: tokens} }

// EntryView is one entry as its owner sees it.
type EntryView struct {
	OrderID string `json:"order_id"`
	Delta   int64  `json:"delta"`
	Reason  string `json:"reason"`
}

// AccountView is the answer of GET /api/points.
type AccountView struct {
	Balance int64       `json:"balance"`
	Entries []EntryView `json:"entries"`
}

// Account is GET /api/points: the caller's balance and entries, newest
// first.
func (a *API) Account(w http.ResponseWriter, r *http.Request) error {
	user, err := a.tokens.RequireUser(r)
	if err != nil {
		return err
	}
	balance, entries, err := a.store.Account(r.Context(), user)
	if err != nil {
		return err
	}
	out := AccountView{Balance: balance, Entries: make([]EntryView, len(entries))}
	for i, e := range entries {
		out.Entries[i] = EntryView(e)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
