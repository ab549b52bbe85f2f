module qianlang.io/integration-tests

go 1.26.8
