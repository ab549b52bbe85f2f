package push

import (
	"net/http"

	"qianlang.io/services/auth"
	"qianlang.io/services/httpapi"
)

// listHandler answers GET /api/notifications with the caller's
// notifications.
func listHandler(tokens *auth.Tokens, n *Notifier) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		user, err := tokens.RequireUser(r)
		if err != nil {
			return err
		}
		list, err := n.List(r.Context(), user)
		if err != nil {
			return err
		}
		httpapi.WriteJSON(w, http.StatusOK, list)
		return nil
	}
}
