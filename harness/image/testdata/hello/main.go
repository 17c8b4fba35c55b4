// Command hello is packed into an image by the image tests.
package main

import "fmt"

var greeting = "hello"

func main() { fmt.Println(greeting, "from a packed binary") }
