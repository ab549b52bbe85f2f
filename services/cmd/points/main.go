// Command points runs the points service: points earned by paid orders
// and taken back by refunds.
package main

import (
	"qianlang.io/services/daemon"
	"qianlang.io/services/points"
)

func main() {
	daemon.Main(daemon.Spec{Name: "points", Queue: true, Migrations: points.Migrations, Setup: points.Setup})
}
