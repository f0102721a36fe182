ALTER TABLE `directories` ADD `generation` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `user_sync_auth0_user_idx` ON `user_sync` (`auth0_user_id`);