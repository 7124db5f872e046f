/** The shapes of the volume store (store.ts), shared with its filters (usage.ts). */

/** A volume as `volume inspect` shows it. */
export interface Volume {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string>;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string>;
  Scope: 'local';
}

/** A volume with what `system df` and `volume ls -f dangling=` need: its size and users. */
export interface VolumeUsage extends Volume {
  /** Bytes of the files under `_data` (hard links counted once), as Docker's `system df` counts. */
  size: number;
  /** Ids of the containers that use it. */
  users: string[];
}

