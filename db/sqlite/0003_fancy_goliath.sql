CREATE TABLE `rate_buckets` (
	`tenant` text NOT NULL,
	`name` text NOT NULL,
	`capacity` real NOT NULL,
	`tokens` real NOT NULL,
	`updated_at` integer NOT NULL,
	`paused_until` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`tenant`, `name`)
);
