DROP INDEX `groups_dir_created_idx`;--> statement-breakpoint
CREATE INDEX `groups_dir_live_created_idx` ON `groups` (`directory_id`,`created_at`,`id`) WHERE deleted_at IS NULL;--> statement-breakpoint
DROP INDEX `users_dir_created_idx`;--> statement-breakpoint
CREATE INDEX `users_dir_live_created_idx` ON `users` (`directory_id`,`created_at`,`id`) WHERE deleted_at IS NULL;