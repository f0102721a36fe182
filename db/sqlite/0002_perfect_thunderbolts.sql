ALTER TABLE `directories` ADD `user_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `directories` ADD `group_count` integer DEFAULT 0 NOT NULL;