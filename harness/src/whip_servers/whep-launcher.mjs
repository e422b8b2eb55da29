// callprobe's launcher for janus-whep-server (written next to its
// node_modules by callprobe at start; the source is in callprobe's
// harness/src/whip_servers/). The WHEP server needs an endpoint made per
// VideoRoom feed before anyone views it; here an endpoint is made on the
// first POST to /whep/endpoint/<id>, for the publisher whose display name
// is <id> (simple-whip-server publishes under its endpoint's label),
// waiting a bounded time for it to publish. A viewer therefore finds a
// publisher's stream under the publisher's own name, as on most servers.
import express from 'express';
import { JanusWhepServer } from 'janus-whep-server';
import VideoRoomPlugin from 'janode/plugins/videoroom';

const config = JSON.parse(process.env.CALLPROBE_WHEP_CONFIG);
const app = express();
const whep = new JanusWhepServer({
	janus: { address: config.janus },
	rest: { app, basePath: '/whep' },
	allowTrickle: true,
	debug: 'warn',
});

let lookup = null;
async function feedOf(display) {
	const deadline = Date.now() + config.publisherWaitMs;
	for (;;) {
		try {
			if (!lookup)
				lookup = await whep.janus.attach(VideoRoomPlugin);
			for (const room of config.rooms) {
				const list = await lookup.listParticipants({ room });
				const found = list.participants.find(p => p.publisher && p.display === display);
				if (found)
					return { room, feed: found.feed };
			}
		} catch (error) {
			lookup = null;
		}
		if (Date.now() >= deadline)
			return null;
		await new Promise(resolve => setTimeout(resolve, 20));
	}
}

app.post('/whep/endpoint/:id', async (req, res, next) => {
	const id = req.params.id;
	if (!whep.getEndpoint({ id })) {
		const found = await feedOf(id);
		if (!found) {
			res.status(404).send(`no publisher "${id}" in room(s) ${config.rooms.join(', ')}`);
			return;
		}
		if (!whep.getEndpoint({ id }))
			whep.createEndpoint({ id, plugin: 'videoroom', room: found.room, feed: found.feed, token: config.token, label: id });
	}
	next();
});

await whep.start();
app.listen(config.port, () => console.log(`WHEP server listening on port ${config.port}`));
