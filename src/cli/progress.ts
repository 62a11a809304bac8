/** Progress on a terminal only (stderr, one line rewritten in place): CI logs stay clean. */
export function progressLine(stream: NodeJS.WriteStream = process.stderr): (done: number, total: number, what: string) => void {
  const show = stream.isTTY === true && !process.env['CI'];
  return (done, total, what) => {
    if (!show || total <= 1) return;
    stream.write(`\r\x1b[K[${done}/${total}] ${what}`);
    if (done === total) stream.write('\r\x1b[K');
  };
}
