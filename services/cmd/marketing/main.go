// Command marketing runs the marketing service: coupons, their
// reservation for orders, and the reward coupons paid orders earn.
package main

import (
	"qianlang.io/services/daemon"
	"qianlang.io/services/marketing"
)

func main() {
	daemon.Main(daemon.Spec{Name: "marketing", Queue: true, Migrations: marketing.Migrations, Setup: marketing.Setup})
}
