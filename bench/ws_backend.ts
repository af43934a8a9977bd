/**
 * The WebSocket server of the benchmark's WebSocket run, as its own process:
 * `deno run --allow-net bench/ws_backend.ts PORT`. Every path echoes each message back, except
 * `/sink`, which counts the bytes it receives and answers the count when a text message `done`
 * arrives (for the 1 GiB tunnel). Prints `listening PORT` once ready.
 *
 * @module
 */

const port = Number(Deno.args[0] ?? 0);
const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ port }) => console.log(`listening ${port}`),
}, (request) => {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("websocket only\n", { status: 400 });
  }
  const sink = new URL(request.url).pathname === "/sink";
  const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: 0 });
  socket.binaryType = "arraybuffer";
  let received = 0;
  socket.onmessage = (event) => {
    if (!sink) {
      socket.send(event.data);
    } else if (event.data === "done") {
      socket.send(String(received));
    } else {
      received += (event.data as ArrayBuffer).byteLength;
    }
  };
  socket.onerror = (event) => event.preventDefault();
  return response;
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    server.shutdown();
    Deno.exit(0);
  });
}
