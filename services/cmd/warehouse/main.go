// Command warehouse runs the warehouse service: it ships paid orders
// through the provider's logistics and takes the provider's delivery
// callbacks at POST /callbacks/delivery.
package main

import (
	"qianlang.io/services/daemon"
	"qianlang.io/services/warehouse"
)

func main() { daemon.Main(warehouse.Spec()) }
