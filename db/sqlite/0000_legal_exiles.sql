CREATE TABLE `admin_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`token_hash` text NOT NULL,
	`hint` text NOT NULL,
	`scope` text NOT NULL,
	`organization_id` text,
	`name` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer,
	`revoked_at` integer,
	`last_used_at` integer,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `admin_tokens_hash_uq` ON `admin_tokens` (`token_hash`);--> statement-breakpoint
CREATE TABLE `audit_entries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor_type` text NOT NULL,
	`actor_id` text NOT NULL,
	`organization_id` text,
	`directory_id` text,
	`action` text NOT NULL,
	`target_type` text NOT NULL,
	`target_id` text,
	`before` text,
	`after` text,
	`request_id` text
);
--> statement-breakpoint
CREATE INDEX `audit_org_at_idx` ON `audit_entries` (`organization_id`,`at`);--> statement-breakpoint
CREATE TABLE `directories` (
	`id` text PRIMARY KEY NOT NULL,
	`organization_id` text NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `directories_org_idx` ON `directories` (`organization_id`);--> statement-breakpoint
CREATE TABLE `group_members` (
	`group_id` text NOT NULL,
	`member_id` text NOT NULL,
	`directory_id` text NOT NULL,
	`member_type` text NOT NULL,
	`display` text,
	`added_at` integer NOT NULL,
	PRIMARY KEY(`group_id`, `member_id`),
	FOREIGN KEY (`group_id`) REFERENCES `groups`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `group_members_member_idx` ON `group_members` (`member_id`);--> statement-breakpoint
CREATE TABLE `groups` (
	`id` text PRIMARY KEY NOT NULL,
	`directory_id` text NOT NULL,
	`display_name` text NOT NULL,
	`display_name_lower` text NOT NULL,
	`external_id` text,
	`resource` text NOT NULL,
	`version` integer NOT NULL,
	`member_count` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`modified_at` integer NOT NULL,
	`deleted_at` integer,
	FOREIGN KEY (`directory_id`) REFERENCES `directories`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `groups_dir_display_idx` ON `groups` (`directory_id`,`display_name_lower`);--> statement-breakpoint
CREATE INDEX `groups_dir_external_idx` ON `groups` (`directory_id`,`external_id`);--> statement-breakpoint
CREATE INDEX `groups_dir_modified_idx` ON `groups` (`directory_id`,`modified_at`);--> statement-breakpoint
CREATE INDEX `groups_dir_created_idx` ON `groups` (`directory_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `guard_pauses` (
	`id` text PRIMARY KEY NOT NULL,
	`organization_id` text NOT NULL,
	`tripped_at` integer NOT NULL,
	`reason` text NOT NULL,
	`state` text NOT NULL,
	`decided_by` text,
	`decided_at` integer,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `guard_pauses_org_idx` ON `guard_pauses` (`organization_id`,`state`);--> statement-breakpoint
CREATE TABLE `holds` (
	`id` text PRIMARY KEY NOT NULL,
	`organization_id` text NOT NULL,
	`directory_id` text NOT NULL,
	`user_id` text NOT NULL,
	`reason` text NOT NULL,
	`placed_by` text NOT NULL,
	`placed_at` integer NOT NULL,
	`released_by` text,
	`released_at` integer,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `holds_user_idx` ON `holds` (`user_id`);--> statement-breakpoint
CREATE INDEX `holds_org_idx` ON `holds` (`organization_id`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organization_id` text NOT NULL,
	`directory_id` text,
	`kind` text NOT NULL,
	`key` text NOT NULL,
	`subject_id` text NOT NULL,
	`lane` integer NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`run_after` integer NOT NULL,
	`lease_owner` text,
	`lease_expires_at` integer,
	`last_error` text,
	`first_enqueued_at` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `jobs_pending_key_uq` ON `jobs` (`key`) WHERE state = 'pending';--> statement-breakpoint
CREATE INDEX `jobs_claim_idx` ON `jobs` (`state`,`lane`,`run_after`,`id`);--> statement-breakpoint
CREATE INDEX `jobs_org_state_idx` ON `jobs` (`organization_id`,`state`);--> statement-breakpoint
CREATE TABLE `mapping_versions` (
	`organization_id` text NOT NULL,
	`version` integer NOT NULL,
	`document` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`comment` text,
	PRIMARY KEY(`organization_id`, `version`),
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `organizations` (
	`id` text PRIMARY KEY NOT NULL,
	`slug` text NOT NULL,
	`display_name` text NOT NULL,
	`user_model` text NOT NULL,
	`connection` text NOT NULL,
	`auth0_org_id` text,
	`active_mapping_version` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `organizations_slug_uq` ON `organizations` (`slug`);--> statement-breakpoint
CREATE TABLE `scim_request_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`directory_id` text NOT NULL,
	`at` integer NOT NULL,
	`method` text NOT NULL,
	`path` text NOT NULL,
	`status` integer NOT NULL,
	`scim_type` text,
	`detail` text,
	`request_id` text,
	`duration_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `scim_request_log_dir_idx` ON `scim_request_log` (`directory_id`,`id`);--> statement-breakpoint
CREATE TABLE `scim_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`directory_id` text NOT NULL,
	`token_hash` text NOT NULL,
	`hint` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer,
	`revoked_at` integer,
	`last_used_at` integer,
	FOREIGN KEY (`directory_id`) REFERENCES `directories`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `scim_tokens_hash_uq` ON `scim_tokens` (`token_hash`);--> statement-breakpoint
CREATE INDEX `scim_tokens_dir_idx` ON `scim_tokens` (`directory_id`);--> statement-breakpoint
CREATE TABLE `user_emails` (
	`user_id` text NOT NULL,
	`directory_id` text NOT NULL,
	`position` integer NOT NULL,
	`value_lower` text NOT NULL,
	`type` text,
	`primary` integer DEFAULT false NOT NULL,
	PRIMARY KEY(`user_id`, `position`),
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `user_emails_dir_value_idx` ON `user_emails` (`directory_id`,`value_lower`);--> statement-breakpoint
CREATE TABLE `user_sync` (
	`user_id` text PRIMARY KEY NOT NULL,
	`directory_id` text NOT NULL,
	`organization_id` text NOT NULL,
	`auth0_user_id` text,
	`applied` text,
	`applied_at` integer,
	`last_error` text,
	`last_error_at` integer
);
--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`directory_id` text NOT NULL,
	`user_name` text NOT NULL,
	`user_name_lower` text NOT NULL,
	`external_id` text,
	`display_name` text,
	`active` integer NOT NULL,
	`resource` text NOT NULL,
	`version` integer NOT NULL,
	`created_at` integer NOT NULL,
	`modified_at` integer NOT NULL,
	`deleted_at` integer,
	FOREIGN KEY (`directory_id`) REFERENCES `directories`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_dir_username_uq` ON `users` (`directory_id`,`user_name_lower`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `users_dir_external_idx` ON `users` (`directory_id`,`external_id`);--> statement-breakpoint
CREATE INDEX `users_dir_display_idx` ON `users` (`directory_id`,`display_name`);--> statement-breakpoint
CREATE INDEX `users_dir_modified_idx` ON `users` (`directory_id`,`modified_at`);--> statement-breakpoint
CREATE INDEX `users_dir_created_idx` ON `users` (`directory_id`,`created_at`,`id`);