'use strict';
// callprobe's data channel, for its browser peer page (callprobe.js): the
// messages a synthetic peer sends (CPDC, kind, sender, number, send time,
// filler, CRC-32), one per interval once the channel is open; a message
// that checks is echoed, so its sender times the round trip. What arrived
// is kept raw for the harness to judge with the verifier it uses for its
// own peers.
//
// `?dataInterval=<ms>` turns it on, with `dataSize`, `dataOrdered=0`,
// `dataRetransmits` and `index` (the number our messages carry).

window.callprobeDataChannel = ({ params, positive, emit, wallClock }) => {
    // The messages a synthetic peer sends (CPDC, kind, sender, number, send
    // time, filler, CRC-32), one per interval once open; a message that
    // checks is echoed, so its sender times the round trip. What arrived is
    // kept raw for the harness to judge with the same verifier as its own.

    const dataSettings = positive('dataInterval') ? {
      interval: positive('dataInterval'),
      size: Math.max(23, positive('dataSize') || 1024),
      ordered: params.get('dataOrdered') !== '0',
      maxRetransmits: params.has('dataRetransmits') ? Number(params.get('dataRetransmits')) : undefined,
    } : null;
    const senderIndex = Number(params.get('index')) || 0;
    const DATA_LABEL = 'callprobe';
    const MIN_MESSAGE = 23;

    const CRC_TABLE = (() => {
      const table = new Uint32Array(256);
      for (let n = 0; n < 256; n += 1) {
        let c = n;
        for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        table[n] = c >>> 0;
      }
      return table;
    })();
    function crc32(bytes) {
      let c = 0xffffffff;
      for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
      return (c ^ 0xffffffff) >>> 0;
    }

    function encodeMessage(kind, sender, seq, sentUs, size) {
      const bytes = new Uint8Array(Math.max(MIN_MESSAGE, size));
      const view = new DataView(bytes.buffer);
      bytes.set([0x43, 0x50, 0x44, 0x43]);
      view.setUint8(4, kind);
      view.setUint16(5, sender);
      view.setUint32(7, seq);
      view.setBigUint64(11, BigInt(sentUs));
      // The same xorshift filler as the synthetic peer's, from (sender, seq).
      let filler = ((sender << 16) ^ seq) >>> 0;
      for (let i = 19; i < bytes.length - 4; i += 1) {
        filler = (filler ^ (filler << 13)) >>> 0;
        filler = (filler ^ (filler >>> 17)) >>> 0;
        filler = (filler ^ (filler << 5)) >>> 0;
        bytes[i] = filler & 0xff;
      }
      view.setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)));
      return bytes;
    }

    function decodeMessage(bytes) {
      if (bytes.length < MIN_MESSAGE || bytes[0] !== 0x43 || bytes[1] !== 0x50
        || bytes[2] !== 0x44 || bytes[3] !== 0x43) return null;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (crc32(bytes.subarray(0, bytes.length - 4)) !== view.getUint32(bytes.length - 4)) return null;
      return { kind: bytes[4], sender: view.getUint16(5), seq: view.getUint32(7), sentUs: view.getBigUint64(11) };
    }

    function toBase64(bytes) {
      let binary = '';
      for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      return btoa(binary);
    }

    function openData(call, channel) {
      channel.binaryType = 'arraybuffer';
      const data = { channel, openedAt: null, sent: 0, bytesSent: 0, received: [], rtts: [], foreignEchoes: 0, timer: null };
      call.data = data;
      const nowUs = () => Math.round(performance.now() * 1000);
      channel.onopen = () => {
        if (call.ended) return;
        data.openedAt = wallClock();
        emit('dataOpen', call.remote);
        let seq = 0;
        const tick = () => {
          if (channel.readyState !== 'open') return;
          const bytes = encodeMessage(0, senderIndex, seq, nowUs(), dataSettings.size);
          channel.send(bytes);
          data.sent += 1;
          data.bytesSent += bytes.length;
          seq += 1;
        };
        tick();
        data.timer = setInterval(tick, dataSettings.interval);
      };
      channel.onmessage = ({ data: payload }) => {
        const bytes = new Uint8Array(payload);
        const message = decodeMessage(bytes);
        if (message && message.kind === 1) {
          if (message.sender === senderIndex) data.rtts.push((nowUs() - Number(message.sentUs)) / 1000);
          else data.foreignEchoes += 1;
          return;
        }
        if (data.received.length < 100000) data.received.push([wallClock(), toBase64(bytes)]);
        if (message && message.kind === 0 && channel.readyState === 'open') {
          channel.send(encodeMessage(1, message.sender, message.seq, message.sentUs, MIN_MESSAGE));
        }
      };
      channel.onclose = () => clearInterval(data.timer);
    }

    function dataReport(call) {
      const data = call.data;
      if (!data) return null;
      const { openedAt, sent, bytesSent, received, rtts, foreignEchoes } = data;
      return { openedAt, sent, bytesSent, received, rtts, foreignEchoes };
    }

  return { settings: dataSettings, label: DATA_LABEL, open: openData, report: dataReport };
};
