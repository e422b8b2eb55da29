'use strict';
// callprobe's browser peer. It speaks the "WebRTC for beginners" protocol
// ({action, data}: start, offer, answer, iceCandidate) plus callprobe's
// hangup, peerLeft and error, and fixes the tutorial client's bugs: an old
// connection is closed before a new one, ICE `disconnected` is not the end of
// a call (it often recovers), `failed` is handled (one ICE restart, then the
// call ends), and several calls at once are kept apart by remote id.
//
// Automation: `?autostart` starts on load, `?call=<id>` calls that peer once
// started, `?width=&height=&fps=` shape the camera, `?loopback` sends only
// loopback ICE candidates (keeps test traffic on 127.0.0.0/8), `?ws=<url>`
// points at another signaling server, `?dataInterval=<ms>` (with `dataSize`,
// `dataOrdered=0`, `dataRetransmits`, and `index`, the number our messages
// carry) opens callprobe's data channel on every call (the caller before
// its offer). `window.callprobe` holds the state and
// an event log with wall-clock times (ms since the Unix epoch), so a harness
// can put the browser's phases on the same timeline as its own peers.

(() => {
  const params = new URLSearchParams(location.search);
  const flag = (name) => params.has(name) && !['0', 'false', 'no'].includes(params.get(name));
  const positive = (name) => {
    const value = Number(params.get(name));
    return Number.isFinite(value) && value > 0 ? value : undefined;
  };
  const $ = (id) => document.getElementById(id);
  const wallClock = () => performance.timeOrigin + performance.now();

  const signalingUrl =
    params.get('ws') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
  const loopbackOnly = flag('loopback');
  // Only one ICE restart per failure: if that fails too, the call is over.
  const MAX_RESTARTS = 1;

  const events = [];
  const calls = new Map();
  let socket = null;
  let localStream = null;
  let localId = null;
  let starting = null;
  let socketState = 'idle';

  function log(line) {
    const entry = document.createElement('div');
    entry.textContent = `${new Date().toISOString().slice(11, 23)} ${line}`;
    const box = $('log');
    box.append(entry);
    while (box.childElementCount > 200) box.firstElementChild.remove();
    box.scrollTop = box.scrollHeight;
  }

  // Everything the harness needs, in order. A DevTools binding, when the
  // harness installed one, gets each event as it happens.
  function emit(kind, remote = null, detail = null) {
    const event = { seq: events.length, at: wallClock(), kind, remote, detail };
    events.push(event);
    log(`${kind}${remote ? ` ${remote}` : ''}${detail ? ` ${JSON.stringify(detail)}` : ''}`);
    if (typeof window.__callprobeEvent === 'function') {
      window.__callprobeEvent(JSON.stringify(event));
    }
  }

  function send(action, data) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      emit('error', data?.remoteId ?? null, { code: 'not-connected', message: `cannot send ${action}: signaling is ${socketState}` });
      return false;
    }
    socket.send(JSON.stringify(data === undefined ? { action } : { action, data }));
    return true;
  }

  function isLoopback(candidate) {
    const address = candidate.address || candidate.candidate.split(' ')[4] || '';
    return address.startsWith('127.') || address === '::1';
  }

  // ---- media -------------------------------------------------------------

  async function openCamera() {
    const video = {};
    for (const [key, name] of [['width', 'width'], ['height', 'height'], ['frameRate', 'fps']]) {
      const value = positive(name);
      if (value) video[key] = { ideal: value };
    }
    // The microphone raw: echo cancellation, noise suppression and gain
    // control would reshape what a test wants to hear arrive intact.
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      video: Object.keys(video).length ? video : true,
    });
    $('localVideo').srcObject = stream;
    return stream;
  }

  // ---- signaling ---------------------------------------------------------

  function openSocket() {
    return new Promise((resolve, reject) => {
      socketState = 'connecting';
      const ws = new WebSocket(signalingUrl);
      ws.onopen = () => {
        socketState = 'open';
        resolve(ws);
      };
      ws.onerror = () => {
        if (socketState === 'connecting') reject(new Error(`cannot connect to ${signalingUrl}`));
      };
      ws.onclose = (close) => {
        const was = socketState;
        socketState = 'closed';
        if (was === 'connecting') reject(new Error(`cannot connect to ${signalingUrl}`));
        emit('socketClosed', null, { code: close.code, reason: close.reason });
        for (const remote of calls.keys()) endCall(remote, 'signalingLost');
      };
      ws.onmessage = ({ data }) => onMessage(data).catch((error) => {
        emit('error', null, { code: 'client', message: String(error) });
      });
    });
  }

  let resolveId;
  const idKnown = new Promise((resolve) => { resolveId = resolve; });

  async function onMessage(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      emit('error', null, { code: 'bad-json', message: 'the server sent something that is not JSON' });
      return;
    }
    const data = message.data || {};
    const remote = data.remoteId;
    switch (message.action) {
      case 'start':
        localId = message.id;
        $('localId').textContent = localId;
        $('callButton').disabled = false;
        emit('started', null, { id: localId });
        resolveId(localId);
        break;
      case 'offer':
        await onOffer(remote, data.offer);
        break;
      case 'answer': {
        const call = liveCall(remote);
        if (!call) return emit('error', remote, { code: 'client', message: 'answer for no call' });
        emit('answerReceived', remote);
        await call.pc.setRemoteDescription(data.answer);
        await flushCandidates(call);
        break;
      }
      case 'iceCandidate': {
        const call = liveCall(remote);
        if (!call || !data.candidate) return;
        if (call.pc.remoteDescription) {
          await addCandidate(call, data.candidate);
        } else {
          call.pendingCandidates.push(data.candidate);
        }
        break;
      }
      case 'hangup':
        if (liveCall(remote)) endCall(remote, 'remoteHungUp');
        break;
      case 'peerLeft':
        if (liveCall(remote)) {
          emit('peerLeft', remote);
          endCall(remote, 'peerLeft');
        }
        break;
      case 'error':
        emit('error', remote ?? null, { code: data.code, message: data.message, inReplyTo: data.inReplyTo });
        // Calling someone who is not there ends that call at once.
        if (data.code === 'unknown-peer' && remote && liveCall(remote)) endCall(remote, 'failed');
        break;
      default:
        emit('error', null, { code: 'unknown-action', message: `unexpected action ${message.action}` });
    }
  }

  async function addCandidate(call, candidate) {
    try {
      await call.pc.addIceCandidate(candidate);
    } catch (error) {
      emit('error', call.remote, { code: 'client', message: `bad candidate: ${error}` });
    }
  }

  async function flushCandidates(call) {
    const pending = call.pendingCandidates.splice(0);
    for (const candidate of pending) await addCandidate(call, candidate);
  }

  // ---- data channel (datachannel.js) ------------------------------------

  const dataChannel = window.callprobeDataChannel({ params, positive, emit, wallClock });
  const dataSettings = dataChannel.settings;

  // ---- calls -------------------------------------------------------------

  function liveCall(remote) {
    const call = calls.get(remote);
    return call && !call.ended ? call : null;
  }

  function newCall(remote, role) {
    const old = calls.get(remote);
    if (old && !old.ended) endCall(remote, 'replaced');
    // No STUN or TURN: test calls run on one machine.
    const pc = new RTCPeerConnection({ iceServers: [] });
    const call = {
      remote, role, pc,
      pendingCandidates: [],
      restarts: 0,
      ended: null,
      ice: pc.iceConnectionState,
      connection: pc.connectionState,
      frames: 0,
      width: 0,
      height: 0,
      firstFrame: null,
      finalStats: null,
      tones: [],
      listener: null,
      stream: new MediaStream(),
      view: remoteView(remote),
    };
    calls.set(remote, call);
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate || call.ended) return; // the tutorial never sends end-of-candidates
      if (loopbackOnly && !isLoopback(candidate)) return;
      send('iceCandidate', { remoteId: remote, candidate });
    };
    pc.oniceconnectionstatechange = () => {
      if (call.ended) return;
      call.ice = pc.iceConnectionState;
      emit('iceState', remote, { state: call.ice });
      if (call.ice === 'failed') onIceFailed(call);
    };
    pc.onconnectionstatechange = () => {
      if (call.ended) return;
      call.connection = pc.connectionState;
      emit('connectionState', remote, { state: call.connection });
    };
    pc.ondatachannel = ({ channel }) => {
      if (dataSettings && channel.label === dataChannel.label && !call.data) dataChannel.open(call, channel);
    };
    pc.ontrack = ({ track }) => {
      call.stream.addTrack(track);
      call.view.video.srcObject = call.stream;
      if (track.kind === 'audio') listen(call, track);
      emit('track', remote, { kind: track.kind });
    };
    for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
    watchFrames(call);
    $('hangupButton').disabled = false;
    return call;
  }

  async function onOffer(remote, offer) {
    let call = liveCall(remote);
    const renegotiation = call && call.pc.remoteDescription;
    if (!renegotiation) {
      emit('offerReceived', remote);
      call = newCall(remote, 'callee');
    } else {
      emit('offerReceived', remote, { renegotiation: true });
    }
    await call.pc.setRemoteDescription(offer);
    await flushCandidates(call);
    await call.pc.setLocalDescription(await call.pc.createAnswer());
    if (send('answer', { remoteId: remote, answer: call.pc.localDescription })) {
      emit('answerSent', remote);
    }
  }

  async function onIceFailed(call) {
    if (call.role !== 'caller' || call.restarts >= MAX_RESTARTS) {
      endCall(call.remote, 'failed');
      return;
    }
    call.restarts += 1;
    const offer = await call.pc.createOffer({ iceRestart: true });
    await call.pc.setLocalDescription(offer);
    if (send('offer', { remoteId: call.remote, offer: call.pc.localDescription })) {
      emit('iceRestartSent', call.remote);
    }
  }

  async function placeCall(remote) {
    if (!remote) throw new Error('no remote id to call');
    await start();
    emit('callCommanded', remote);
    const call = newCall(remote, 'caller');
    // As the tutorial's page does: the channel is opened before the offer.
    if (dataSettings) {
      const init = { ordered: dataSettings.ordered };
      if (dataSettings.maxRetransmits !== undefined) init.maxRetransmits = dataSettings.maxRetransmits;
      dataChannel.open(call, call.pc.createDataChannel(dataChannel.label, init));
    }
    await call.pc.setLocalDescription(await call.pc.createOffer());
    if (send('offer', { remoteId: remote, offer: call.pc.localDescription })) {
      emit('offerSent', remote);
    }
  }

  function hangup(remote) {
    const targets = remote ? [remote] : [...calls.keys()];
    for (const target of targets) {
      if (!liveCall(target)) continue;
      send('hangup', { remoteId: target });
      endCall(target, 'hungUp');
    }
  }

  // Ends a call once: stats are taken before the connection closes, so a
  // harness can read what was received after the call is gone.
  function endCall(remote, reason) {
    const call = calls.get(remote);
    if (!call || call.ended) return;
    call.ended = reason;
    const closed = stats(remote, true)
      .catch(() => null)
      .then((final) => {
        call.finalStats = final;
        if (call.data) clearInterval(call.data.timer);
        if (call.listener) call.listener.stop();
        call.pc.close();
        call.view.root.remove();
        emit('ended', remote, { reason, stats: final });
      });
    call.closed = closed;
    if (![...calls.values()].some((c) => !c.ended)) $('hangupButton').disabled = true;
  }

  // ---- what the browser received ----------------------------------------

  function remoteView(remote) {
    const root = document.createElement('div');
    root.className = 'remote';
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true; // autoplay is always allowed muted; audio is measured by getStats
    const label = document.createElement('p');
    label.textContent = remote;
    root.append(video, label);
    $('remotes').append(root);
    return { root, video, label };
  }

  function watchFrames(call) {
    const { video } = call.view;
    if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) return;
    const onFrame = (_now, metadata) => {
      if (call.ended) return;
      call.frames = metadata.presentedFrames;
      call.width = metadata.width;
      call.height = metadata.height;
      if (!call.firstFrame) {
        // Grabbed in the callback, so it is that very frame.
        call.firstFrame = { at: wallClock(), width: metadata.width, height: metadata.height, grab: grabVideo(video) };
        emit('firstFrame', call.remote, { width: metadata.width, height: metadata.height });
      }
      call.view.label.textContent = `${call.remote}: ${metadata.width}x${metadata.height}, ${call.frames} frames`;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  // The strongest frequency heard, five times a second: a synthetic peer's
  // tone is a pure sine, so the peak of a 16k-point FFT (2.9 Hz bins at
  // 48 kHz) names it.
  const audioContext = new AudioContext();
  function listen(call, track) {
    audioContext.resume().catch(() => {});
    const source = audioContext.createMediaStreamSource(new MediaStream([track]));
    const analyser = audioContext.createAnalyser();
    analyser.fftSize = 16384;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const timer = setInterval(() => {
      analyser.getFloatFrequencyData(bins);
      let peak = 0;
      for (let i = 1; i < bins.length; i += 1) if (bins[i] > bins[peak]) peak = i;
      const hz = (peak * audioContext.sampleRate) / analyser.fftSize;
      call.tones.push({ at: wallClock(), hz, db: bins[peak] });
      if (call.tones.length > 3000) call.tones.shift();
    }, 200);
    call.listener = { stop: () => { clearInterval(timer); source.disconnect(); } };
  }

  const canvas = document.createElement('canvas');

  function grabVideo(video) {
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) return null;
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.drawImage(video, 0, 0, width, height);
    const { data } = context.getImageData(0, 0, width, height);
    let binary = '';
    const chunk = 0x8000;
    for (let i = 0; i < data.length; i += chunk) {
      binary += String.fromCharCode.apply(null, data.subarray(i, i + chunk));
    }
    return { at: wallClock(), width, height, rgba: btoa(binary) };
  }

  const STAT_FIELDS = {
    video: ['packetsReceived', 'packetsLost', 'bytesReceived', 'framesReceived', 'framesDecoded',
      'keyFramesDecoded', 'framesDropped', 'frameWidth', 'frameHeight', 'framesPerSecond',
      'freezeCount', 'totalFreezesDuration', 'pauseCount', 'nackCount', 'pliCount', 'firCount',
      'jitter', 'jitterBufferDelay', 'jitterBufferEmittedCount', 'decoderImplementation'],
    audio: ['packetsReceived', 'packetsLost', 'bytesReceived', 'totalSamplesReceived',
      'concealedSamples', 'silentConcealedSamples', 'audioLevel', 'totalAudioEnergy', 'jitter'],
    sent: ['packetsSent', 'bytesSent', 'framesEncoded', 'framesSent', 'keyFramesEncoded',
      'frameWidth', 'frameHeight', 'framesPerSecond', 'encoderImplementation', 'nackCount', 'pliCount'],
  };

  const pick = (source, fields) => Object.fromEntries(fields.filter((f) => source[f] !== undefined).map((f) => [f, source[f]]));

  async function stats(remote, evenIfEnded = false) {
    const call = calls.get(remote);
    if (!call) return null;
    if (call.ended && !evenIfEnded) return call.finalStats;
    const report = await call.pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    const codec = (s) => {
      const c = byId.get(s.codecId);
      return c ? { mimeType: c.mimeType, payloadType: c.payloadType, sdpFmtpLine: c.sdpFmtpLine ?? null } : null;
    };
    const out = { at: wallClock(), received: {}, sent: {}, pair: null, localCandidates: [] };
    report.forEach((s) => {
      if (s.type === 'local-candidate') {
        out.localCandidates.push(`${s.address}:${s.port} ${s.candidateType}`);
      } else if (s.type === 'inbound-rtp') {
        out.received[s.kind] = { ...pick(s, STAT_FIELDS[s.kind] || []), codec: codec(s) };
      } else if (s.type === 'outbound-rtp') {
        out.sent[s.kind] = { ...pick(s, STAT_FIELDS.sent), codec: codec(s) };
      } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        const local = byId.get(s.localCandidateId);
        const far = byId.get(s.remoteCandidateId);
        out.pair = {
          local: local ? `${local.address}:${local.port}` : null,
          remote: far ? `${far.address}:${far.port}` : null,
          rttMs: s.currentRoundTripTime !== undefined ? s.currentRoundTripTime * 1000 : null,
        };
      }
    });
    out.presentedFrames = call.frames;
    out.tones = call.tones;
    // What the data channel carried, raw: only in the final stats.
    if (evenIfEnded) out.data = dataChannel.report(call);
    return out;
  }

  function status() {
    const view = {};
    for (const [remote, call] of calls) {
      view[remote] = {
        role: call.role, ended: call.ended, ice: call.ice, connection: call.connection,
        frames: call.frames, width: call.width, height: call.height,
        firstFrameAt: call.firstFrame ? call.firstFrame.at : null,
      };
    }
    return { id: localId, signaling: socketState, calls: view, events: events.length };
  }

  // ---- start -------------------------------------------------------------

  function start() {
    starting ??= (async () => {
      $('startButton').disabled = true;
      localStream = await openCamera();
      socket = await openSocket();
      send('start');
      return idKnown;
    })().catch((error) => {
      emit('error', null, { code: 'start', message: String(error) });
      starting = null;
      $('startButton').disabled = false;
      throw error;
    });
    return starting;
  }

  window.callprobe = {
    start,
    call: placeCall,
    hangup,
    status,
    stats: (remote) => stats(remote),
    grab: (remote) => {
      const call = calls.get(remote);
      return call && !call.ended ? grabVideo(call.view.video) : null;
    },
    firstFrame: (remote) => calls.get(remote)?.firstFrame ?? null,
    events: (since = 0) => events.slice(since),
  };

  $('startButton').onclick = () => start().catch(() => {});
  $('callButton').onclick = () => placeCall($('callId').value.trim()).catch((error) => alert(error.message));
  $('hangupButton').onclick = () => hangup();

  const toCall = params.get('call');
  if (flag('autostart') || toCall) {
    start().then(() => (toCall ? placeCall(toCall) : null)).catch(() => {});
  }
})();
