import { snapshotterSuite } from '../conformance/snapshotter.js';
import { OverlaySnapshotter } from '../../src/overlay/overlay.js';

snapshotterSuite('overlay', (root) => OverlaySnapshotter.open(root));
