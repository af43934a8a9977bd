import { assertEquals } from "../../tests/_assert.ts";
import { portHeld } from "./port_owner.ts";

Deno.test("portHeld sees a listener on the port, on its address or the wildcard", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  try {
    assertEquals(await portHeld("127.0.0.1", port), true);
    assertEquals(await portHeld("0.0.0.0", port), true);
    assertEquals(await portHeld("127.0.0.2", port), false);
  } finally {
    listener.close();
  }
  assertEquals(await portHeld("127.0.0.1", port), false);
});
