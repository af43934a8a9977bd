/**
 * The chunk-coded reader in both its uses, fed through the real connection code at every split
 * point: an upstream's chunked body passed on byte for byte (extensions and trailers kept), and a
 * client's chunked upload relayed with clean framing (extensions and trailers dropped), the data
 * the same either way.
 */
import { assert, assertEquals, assertRejects } from "../../../tests/_assert.ts";
import { rawChunkedReader } from "./body.ts";
import { relayChunkedReader } from "./chunked_relay.ts";
import { EofError, Wire } from "./connection.ts";
import { bytesOf, Parts, splits, textOf } from "./_parts.ts";
import { DEFAULT_LIMITS, ParseError } from "./parser.ts";

const CODED = '3;ext="a b"\r\nabc\r\n10 ; x\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n';
const AFTER = "GET /next";

async function readAll(
  parts: Uint8Array[],
  reader: typeof rawChunkedReader,
): Promise<{ text: string; complete: boolean }> {
  const wire = new Wire(new Parts(parts), 32);
  const body = reader(wire, DEFAULT_LIMITS);
  let text = "";
  for (let chunk = await body.next(); chunk !== null; chunk = await body.next()) {
    text += textOf(chunk);
  }
  return { text, complete: body.complete };
}

Deno.test("the raw reader hands out the chunked coding exactly as sent, at every split", async () => {
  for (const parts of splits(bytesOf(CODED + AFTER))) {
    const got = await readAll(parts, rawChunkedReader);
    assertEquals(got.text, CODED);
    assertEquals(got.complete, true);
  }
});

Deno.test("the relay reader keeps sizes and data, drops extensions and trailers, at every split", async () => {
  for (const parts of splits(bytesOf(CODED + AFTER))) {
    const got = await readAll(parts, relayChunkedReader);
    assertEquals(got.text, "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
    assertEquals(got.complete, true);
  }
});

Deno.test("both readers refuse bad framing and a body cut short, each naming its peer", async () => {
  for (const reader of [rawChunkedReader, relayChunkedReader]) {
    const bad = await assertRejects(() => readAll([bytesOf("3\r\nabcX\r\n0\r\n\r\n")], reader));
    assert(bad instanceof ParseError, String(bad));
    const cut = await assertRejects(() => readAll([bytesOf("3\r\nab")], reader));
    assert(cut instanceof EofError, String(cut));
    assertEquals(cut.message.split(" ")[0], reader === rawChunkedReader ? "upstream" : "the");
  }
});
