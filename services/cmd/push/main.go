// Command push runs the push service: SMS notifications of order events
// through the provider, and GET /api/notifications.
package main

import (
	"qianlang.io/services/daemon"
	"qianlang.io/services/push"
)

func main() { daemon.Main(push.Spec()) }
