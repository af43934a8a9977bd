import { assertEquals } from "../../../tests/_assert.ts";
import { writeLatin1 } from "./request.ts";

Deno.test("writeLatin1: one byte per character, short and long text, ASCII and Latin-1", () => {
  const cases = [
    "hi",
    "x-forwarded-for: 127.0.0.1\r\n".repeat(10), // long: the encodeInto path
    "caf\u00e9 ".repeat(3), // short with a Latin-1 character
    "caf\u00e9 \u00ff ".repeat(40), // long with Latin-1 characters: encodeInto writes UTF-8, redone
  ];
  for (const text of cases) {
    const out = new Uint8Array(text.length + 4).fill(0xaa);
    const end = writeLatin1(out, 2, text);
    assertEquals(end, 2 + text.length);
    assertEquals([...out.subarray(2, end)], [...text].map((c) => c.charCodeAt(0)));
    assertEquals([out[0], out[1], out[end], out[end + 1]], [0xaa, 0xaa, 0xaa, 0xaa]);
  }
});
